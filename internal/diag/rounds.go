package diag

// MaxRounds bounds the loop between the trees and the executor
// (internal/diag/gather): a tree asks for at most a handful of facts.
const MaxRounds = 12
