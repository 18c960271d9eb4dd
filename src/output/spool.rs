//! SKELETON (issue 13): the crash-safe on-disk spool. Owner fills in.
