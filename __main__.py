"""Entry point of `pulumi up`: the stack's configured role (primary | secondary) picks the program."""

from stacks.program import main

main()
