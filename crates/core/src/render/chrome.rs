//! Export to Chrome DevTools' `.heapsnapshot` format (being written).
