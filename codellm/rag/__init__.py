"Stage 6's parts: a codebase walked and cut into chunks (chunks), and what embeds, pairs and searches them."
