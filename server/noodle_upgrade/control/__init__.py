"""The control endpoint: a live runtime, observed and steered from outside."""
