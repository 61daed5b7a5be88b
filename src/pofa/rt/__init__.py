"""Radiotherapy: dose grids from DICOM RT, dose to failure lesions, field classes, fractionation."""
