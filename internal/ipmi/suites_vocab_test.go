package ipmi

import "testing"

// TestSupportedIsTheAlgorithmTable: vocab.CipherSuite.Supported (pure, for
// callers that must not import the engine) names exactly the suites whose
// algorithms this package implements.
func TestSupportedIsTheAlgorithmTable(t *testing.T) {
	for n := 0; n < 256; n++ {
		s := CipherSuite(n)
		if _, ok := suites[s]; ok != s.Supported() {
			t.Errorf("suite %d: in the algorithm table %v, Supported %v", n, ok, s.Supported())
		}
	}
}
