"What a model may use: the sandbox that runs its code, and the tools it can call."
