"Comparisons that belong to a chapter (e.g. staged vs joint training); `codellm experiment <name>` runs one."
