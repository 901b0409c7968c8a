"""Station managers' desk: their incidents, figures, exports, device health; the access log."""
