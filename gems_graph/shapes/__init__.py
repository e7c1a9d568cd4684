"""The offline shapes world: grammar, renderer, pixel checker and a small diffusion model.

Submodules are imported on demand (``grammar``/``render``/``detect`` need no torch;
``pipeline``/``generator``/``train`` do).
"""
