package local

// SetCrashHook makes f run at each crash point (tests kill the process there).
func SetCrashHook(f func(point string)) { crashHook = f }
