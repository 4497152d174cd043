//! X-Road REST headers, signing inputs, envelopes and error bodies (pure).
