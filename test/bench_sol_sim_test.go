package test

// killBenchSim ends a sim before its cleanup (which then reaps it), to
// free the CPU between attempts.
func killBenchSim(s *ipmiSim) {
	s.cmd.Process.Kill()
}
