package ledger

// ContendedFor lets external tests wait until accounts found changed may be remembered again.
const ContendedFor = contendedFor
