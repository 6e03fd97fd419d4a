"""What the tiny arithmetic student (the ``arithmetic_student`` fixture) is taught to write:
rationales whose sums are wrong, so that a calculator's results can be told from its own."""

TAUGHT_ARITHMETIC = {  # prompt -> a (wrong) rationale that arithmetic_student learns to write
    "Add ###": " 12 + 30 = 97 so the answer is 97.",
    "Cut ###": " 7 / 0 = 5 so the answer is 5.",
    "Two ###": " 2 + 2 = 41 so the answer is 41.",
    "Pay ###": " $4.50 + $3 = $9 in all.",
    "Big ###": " 9 ** 99 = 8 and 12 + 30 = 97.",
    "Dot ###": " 7 + 4 = 11.33 in all. 5 + 6 = 11, 2 each.",
}
