"""pwm: policy learning with large world models (TD-MPC2 world models, PWM, SHAC)."""

__version__ = "0.1.0"
