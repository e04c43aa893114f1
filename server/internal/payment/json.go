package payment

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
)

// jsonColumn stores a value as a jsonb column.
type jsonColumn[T any] struct{ V T }

// Value implements driver.Valuer.
func (j jsonColumn[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(j.V)
	return string(b), err
}

// Scan implements sql.Scanner.
func (j *jsonColumn[T]) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		return json.Unmarshal(v, &j.V)
	case string:
		return json.Unmarshal([]byte(v), &j.V)
	case nil:
		return nil
	}
	return fmt.Errorf("jsonColumn: cannot scan %T", src)
}
