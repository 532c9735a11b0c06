package bytesize

import "testing"

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		64 << 20: "64.0 MiB", 2 << 30: "2.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestMB(t *testing.T) {
	for n, want := range map[int64]string{0: "0.0 MB", 49999: "0.0 MB", 120_000_000: "120.0 MB", 69_849_999: "69.8 MB", 3 << 30: "3221.2 MB"} {
		if got := MB(n); got != want {
			t.Errorf("MB(%d) = %s, want %s", n, got, want)
		}
	}
}
