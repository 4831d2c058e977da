// Placeholder; replaced by the tests of this target.
