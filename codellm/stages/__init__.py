"The curriculum's stages, one module each (with its data helpers beside it); `codellm.stage.load_stages` discovers them."
