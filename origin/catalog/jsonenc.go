package catalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/novashop/edge/origin/money"
)

// The product page and list are the origin's hot reads. Their JSON is
// appended straight from the rows' raw column bytes into a reused buffer:
// no Product values, no strings per column, no reflection. The output is
// byte for byte what encoding/json makes of Product and Page (with
// SetEscapeHTML(false), as api.WriteJSON encodes), which
// TestAppendMatchesEncodingJSON and FuzzAppendJSONString pin.

// ErrRawColumn means a column came back in a format the raw decoder does
// not read (pgx asks for binary results for these types, so this is a bug
// or a schema change, answered 500 and logged).
var ErrRawColumn = errors.New("catalog: unexpected column format")

// Positions of productCols in a row.
const (
	colID = iota
	colName
	colDescription
	colPriceCents
	colStock
	colCategoryID
	colCategoryName
	colImage
	colCreatedAt
	numCols
)

// pgEpoch is PostgreSQL's timestamp epoch; binary timestamptz values are
// microseconds since it.
var pgEpochMicro = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// rawInt reads a binary or text integer column.
func rawInt(fd pgconn.FieldDescription, b []byte) (int64, error) {
	if fd.Format == pgx.TextFormatCode {
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrRawColumn, fd.Name, err)
		}
		return n, nil
	}
	switch len(b) {
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	}
	return 0, fmt.Errorf("%w: %s is %d bytes", ErrRawColumn, fd.Name, len(b))
}

// rawRow is one product row's decoded numbers and raw text columns (which
// alias pgx's read buffer: valid until the next row).
type rawRow struct {
	id, priceCents, stock, categoryID, createdMicro int64
	name, description, categoryName, image          []byte
}

func decodeRaw(fds []pgconn.FieldDescription, raw [][]byte, r *rawRow) error {
	if len(raw) != numCols || len(fds) != numCols {
		return fmt.Errorf("%w: %d columns", ErrRawColumn, len(raw))
	}
	for i, v := range raw {
		if v == nil {
			return fmt.Errorf("%w: %s is NULL", ErrRawColumn, fds[i].Name)
		}
	}
	var err error
	ints := [...]struct {
		col int
		dst *int64
	}{{colID, &r.id}, {colPriceCents, &r.priceCents}, {colStock, &r.stock}, {colCategoryID, &r.categoryID}}
	for _, c := range ints {
		if *c.dst, err = rawInt(fds[c.col], raw[c.col]); err != nil {
			return err
		}
	}
	if fds[colCreatedAt].Format != pgx.BinaryFormatCode || len(raw[colCreatedAt]) != 8 {
		return fmt.Errorf("%w: created_at", ErrRawColumn)
	}
	r.createdMicro = int64(binary.BigEndian.Uint64(raw[colCreatedAt])) + pgEpochMicro
	r.name, r.description, r.categoryName, r.image = raw[colName], raw[colDescription], raw[colCategoryName], raw[colImage]
	return nil
}

// appendProduct appends the JSON of one product, as encoding/json writes
// Product.
func appendProduct(b []byte, r *rawRow) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.name)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, r.description)
	b = append(b, `,"price":"`...)
	b = money.Append(b, r.priceCents)
	b = append(b, `","stock":`...)
	b = strconv.AppendInt(b, r.stock, 10)
	b = append(b, `,"category":{"id":`...)
	b = strconv.AppendInt(b, r.categoryID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.categoryName)
	b = append(b, `},"image":`...)
	b = appendJSONString(b, r.image)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json
// does without HTML escaping: '"', '\\' and control characters escaped
// (\b \f \n \r \t short), invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped (they break JavaScript that embeds JSON).
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendProductJSON appends product id's JSON (Product's, without the
// trailing newline) to dst and returns it with the product's category id
// (for its cache tags). An unknown id is ErrProductNotFound.
func (s *Store) AppendProductJSON(ctx context.Context, dst []byte, id int64) ([]byte, int64, error) {
	rows, err := s.Pool.Query(ctx, productSQL, id)
	if err != nil {
		return dst, 0, fmt.Errorf("catalog: product: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return dst, 0, fmt.Errorf("catalog: product: %w", err)
		}
		return dst, 0, ErrProductNotFound
	}
	var r rawRow
	if err := decodeRaw(rows.FieldDescriptions(), rows.RawValues(), &r); err != nil {
		return dst, 0, err
	}
	dst = appendProduct(dst, &r)
	rows.Close()
	if err := rows.Err(); err != nil {
		return dst, 0, fmt.Errorf("catalog: product: %w", err)
	}
	return dst, r.categoryID, nil
}

// AppendListJSON appends one page of the product list as Page's JSON
// ({"results": [...], "next": cursor or null}, without the trailing
// newline) to dst. It runs the very SQL of List (ListSQL).
func (s *Store) AppendListJSON(ctx context.Context, dst []byte, q ListQuery) ([]byte, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	sql, args := ListSQL(q)
	rows, err := s.Pool.Query(ctx, sql, args...)
	if err != nil {
		return dst, fmt.Errorf("catalog: list: %w", err)
	}
	defer rows.Close()
	dst = append(dst, `{"results":[`...)
	var r rawRow
	var last Cursor
	n, more := 0, false
	for rows.Next() {
		if n == q.Limit {
			more = true
			break
		}
		if err := decodeRaw(rows.FieldDescriptions(), rows.RawValues(), &r); err != nil {
			return dst, err
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendProduct(dst, &r)
		n++
		if n == q.Limit {
			// The raw bytes die with the next row: keep the cursor now.
			last = Cursor{Ordering: q.Ordering, ID: r.id}
			switch q.Ordering {
			case OrderPrice, OrderPriceDsc:
				last.Price = r.priceCents
			case OrderName:
				last.Name = string(r.name)
			case OrderNewest:
				last.Created = r.createdMicro
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("catalog: list: %w", err)
	}
	dst = append(dst, `],"next":`...)
	if !more {
		return append(dst, "null}"...), nil
	}
	dst = append(dst, '"')
	dst = appendCursor(dst, last)
	return append(dst, `"}`...), nil
}
