"""Graph nodes: planner, generator, critic, refiner, each with its prompts beside it."""
