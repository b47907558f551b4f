package schema

import (
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// CheckEvolution checks that a vault's schema may change from old to new
// while data is stored under old. It first validates new.
//
// Allowed: adding tables and columns; changing the vault's name and
// description and a column's redaction, mask and validation (a new
// validation applies to writes from then on; stored values are not
// rechecked); turning unique off; reordering tables and columns.
//
// Refused, because stored data depends on them: removing a table or a
// column (its stored values would be stranded), changing a column's
// data_type (stored values are encoded for it), token_type or
// column_group (issued tokens would stop matching), turning unique on
// for an existing column (stored values may already repeat), and setting
// or clearing data_subject on a table that already exists (its stored
// records are sealed for their subjects, or are not).
func CheckEvolution(old, new *Vault) error {
	if err := new.Validate(); err != nil {
		return err
	}
	if old == nil {
		return nil
	}
	for i := range old.Tables {
		ot := &old.Tables[i]
		nt, ok := new.Table(ot.Name)
		if !ok {
			return apierr.InvalidArgument("table %q cannot be removed: its stored records would be stranded; keep it in the schema (delete its records first if they are no longer needed, and stop writing to it)", ot.Name)
		}
		if err := checkSubjectChange(ot, nt); err != nil {
			return err
		}
		for j := range ot.Columns {
			oc := &ot.Columns[j]
			nc, ok := nt.Column(oc.Name)
			if !ok {
				return apierr.InvalidArgument("column %q of table %q cannot be removed: its stored values would be stranded; keep it in the schema", oc.Name, ot.Name)
			}
			if err := checkColumnChange(ot.Name, oc, nc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkColumnChange(table string, oc, nc *Column) error {
	if oc.DataType != nc.DataType {
		return apierr.InvalidArgument("column %q of table %q: data_type cannot change from %q to %q: stored values are encoded as %s; add a new column instead",
			oc.Name, table, oc.DataType, nc.DataType, oc.DataType)
	}
	if oc.TokenType != nc.TokenType {
		return apierr.InvalidArgument("column %q of table %q: token_type cannot change from %s to %s: tokens already issued would no longer match; add a new column instead",
			oc.Name, table, tokenTypeName(oc.TokenType), tokenTypeName(nc.TokenType))
	}
	if oc.ColumnGroup != nc.ColumnGroup {
		return apierr.InvalidArgument("column %q of table %q: column_group cannot change from %s to %s: deterministic tokens already issued belong to the old group; add a new column instead",
			oc.Name, table, groupName(table, oc), groupName(table, nc))
	}
	if nc.Unique && !oc.Unique {
		return apierr.InvalidArgument("column %q of table %q: unique cannot be turned on for an existing column, since its stored values may already repeat; add a new unique column instead", oc.Name, table)
	}
	return nil
}

// checkSubjectChange keeps a table's data_subject column as it was made:
// records stored before a change would be sealed for the wrong subjects.
func checkSubjectChange(ot, nt *Table) error {
	was, is := ot.SubjectColumn(), nt.SubjectColumn()
	switch {
	case was == nil && is != nil:
		return apierr.InvalidArgument("table %q: column %q cannot become its data_subject column: the table's stored records belong to no subject; a data_subject column is set when its table is made", nt.Name, is.Name)
	case was != nil && (is == nil || is.Name != was.Name):
		return apierr.InvalidArgument("table %q: its data_subject column %q cannot change: its stored records are sealed for their subjects", ot.Name, was.Name)
	}
	return nil
}

func tokenTypeName(t TokenType) string {
	if t == NoToken {
		return "none"
	}
	return string(t)
}

func groupName(table string, c *Column) string {
	if c.ColumnGroup == "" {
		return "none (its own group " + table + "." + c.Name + ")"
	}
	return `"` + c.ColumnGroup + `"`
}
