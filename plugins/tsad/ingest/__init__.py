"""(temporary)"""
