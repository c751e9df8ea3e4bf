//! Code every middleware of the crate writes the same way, written once (tower-http's
//! `macros.rs` does the same).

/// `get_ref`, `get_mut` and `into_inner` on a service whose inner service is `inner: S`.
macro_rules! define_inner_service_accessors {
    () => {
        /// Gets a reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// Gets a mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consumes `self`, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
