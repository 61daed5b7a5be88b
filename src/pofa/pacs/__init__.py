"""DICOMweb: find, fetch and store series on a PACS."""
