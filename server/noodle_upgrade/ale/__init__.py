"""Adaptive Library Evolution (DESIGN §5): record real calls into external libraries
(pilot: ``numpy.dot``, ``numpy.matmul``), prove faster candidates equivalent in a
sandbox, and route calls to them per input signature."""
