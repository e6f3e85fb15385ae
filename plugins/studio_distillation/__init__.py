"""Built-in distillation techniques; registered through the studio.techniques entry point like any plugin."""
