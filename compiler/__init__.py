"""lbc: a load-balancer configuration compiler and validator."""
__version__ = "0.1.0"
