//! Global configuration model, signing, anchors, fetching and caching.
