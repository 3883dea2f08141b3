package ledger

import bolt "go.etcd.io/bbolt"

type bboltTx = bolt.Tx

// checkTx runs bbolt's consistency check and returns its first error.
func checkTx(tx *bolt.Tx) error {
	for err := range tx.Check() {
		return err
	}
	return nil
}
