"""Built-in pruning techniques; registered through the studio.techniques entry point like any plugin."""
