//go:build !race

package tasklist

// raceEnabled reports a race-detector build (heavy tests run smaller).
const raceEnabled = false
