package crawler

// TokenRegistry lets the external tests (those that run the pipeline into
// the real incidents package, which imports crawler) share the fixture.
var TokenRegistry = tokenRegistry
