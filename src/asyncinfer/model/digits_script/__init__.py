"""The digits demo's inference script (``inference.py``), copied into the artifact's ``code/`` by digits.py."""
