"""methods/new_fine_tune_cot"""
