"""Command-line front doors: parse, call one function, map JobautoError to one line."""
