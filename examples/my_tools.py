"""Tools of your own: python -m composition.local --tools_module examples/my_tools.py"""

import random


def roll_dice(sides: int = 6) -> int:
    """Rolls a die with this many sides and says what it shows."""
    return random.randint(1, sides)


def fahrenheit(celsius: float) -> float:
    """Converts a temperature from degrees Celsius to degrees Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)
