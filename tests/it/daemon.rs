//! `dqwatch daemon` end to end (being written).
