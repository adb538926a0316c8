"""Helpers shared by several test modules (fixtures, sample builders, stand-ins): test modules
import from here, never from one another."""
