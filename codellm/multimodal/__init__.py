"Stage 5's parts: pictures and the programs that draw them (images), and the vision encoder and vision-language model (vision)."
