"""Built-in quantization techniques; registered through the studio.techniques entry point like any plugin."""
