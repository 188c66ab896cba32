// Weight initialisation draws from torch's one global generator, so tests that seed it and build a model
// must not interleave with others drawing from it at the same time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
