"Stage 4's parts: the judge, preference data, the reward model, PPO, DPO and GRPO."
from .code_judge import judge
