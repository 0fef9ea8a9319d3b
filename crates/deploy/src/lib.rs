//! Zero-downtime deploys: strategies, journal and release history (issue 5).
