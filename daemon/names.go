package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"regexp"
)

// Container names follow Docker's rules: what a user gives must match
// validName (a leading "/" is allowed and dropped), and a container created
// without a name gets one made of an adjective and the surname of someone
// who shaped computing, such as "patient_hopper". The lists are fusebox's
// own.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

var nameAdjectives = []string{
	"able", "agile", "amber", "bold", "brave", "bright", "busy", "calm",
	"candid", "careful", "cheerful", "clever", "cosmic", "curious", "daring",
	"dazzling", "eager", "earnest", "fearless", "festive", "fond", "frosty",
	"gentle", "gifted", "glad", "golden", "happy", "honest", "humble",
	"jolly", "keen", "kind", "lively", "loyal", "lucid", "merry", "mighty",
	"modest", "nimble", "noble", "patient", "peaceful", "polite", "proud",
	"quick", "quiet", "radiant", "rapid", "serene", "sharp", "shiny",
	"silent", "smart", "steady", "stoic", "sunny", "swift", "tender",
	"tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous",
}

var nameSurnames = []string{
	"allen", "babbage", "backus", "bartik", "berners", "boole", "borg",
	"cerf", "church", "codd", "conway", "corbato", "dijkstra", "easley",
	"engelbart", "floyd", "goldberg", "hamming", "hamilton", "hoare",
	"hopper", "huffman", "kahan", "kay", "kernighan", "knuth", "lamport",
	"liskov", "lovelace", "mccarthy", "milner", "minsky", "moore", "naur",
	"neumann", "nygaard", "perlman", "pike", "ritchie", "rivest", "shamir",
	"shannon", "sammet", "stallman", "sutherland", "tanenbaum", "thompson",
	"torvalds", "turing", "wilkes", "wirth", "wozniak", "yao", "zuse",
}

// randomName returns adjective_surname; retry adds a digit, as Docker
// does when the first names it tries are taken.
func randomName(retry int) string {
	name := nameAdjectives[randInt(len(nameAdjectives))] + "_" + nameSurnames[randInt(len(nameSurnames))]
	if retry > 0 {
		name += string(rune('0' + randInt(10)))
	}
	return name
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return int(v.Int64())
}

// newID returns a random 64-hex-digit ID whose 12-digit short form is not
// all digits (Docker avoids those: they read as numbers).
func newID() string {
	b := make([]byte, 32)
	for {
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		for _, c := range id[:12] {
			if c > '9' {
				return id
			}
		}
	}
}
