"""methods/socratic"""
