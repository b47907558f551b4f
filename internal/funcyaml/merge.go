package funcyaml

import (
	"maps"
	"reflect"
)

// Merge lays a function's func.yaml over the root func.yaml's set-wide
// defaults and returns the result; neither argument is changed or shared
// with it. What the function sets wins:
//
//   - a string, number or boolean the function sets replaces the root's;
//   - maps (deploy.annotations, build.builderImages) merge key by key;
//   - run.envs merge by name, deploy.labels by key and run.volumes by path
//     (the root's first, in its order, then the function's new ones);
//   - any other list the function sets (deploy.subscriptions,
//     build.buildpacks, build.buildEnvs) replaces the root's.
//
// The result has the function's File (errors name it).
func Merge(root, fn *Function) *Function {
	out := &Function{}
	if root != nil {
		merge(reflect.ValueOf(out).Elem(), reflect.ValueOf(root).Elem())
	}
	if fn != nil {
		merge(reflect.ValueOf(out).Elem(), reflect.ValueOf(fn).Elem())
		out.File = fn.File
		out.lines = maps.Clone(fn.lines)
	}
	return out
}

// keyOf returns the merge key of an element of a keyed list.
func keyOf(v reflect.Value) (string, bool) {
	switch e := v.Interface().(type) {
	case Env:
		return e.Name, e.Name != ""
	case Label:
		return e.Key, e.Key != ""
	case Volume:
		return e.Path, e.Path != ""
	}
	return "", false
}

// keyed lists merge element by element.
var keyed = map[reflect.Type]bool{
	reflect.TypeFor[[]Env]():    true,
	reflect.TypeFor[[]Label]():  true,
	reflect.TypeFor[[]Volume](): true,
}

// merge lays src over dst. dst only ever holds values merge made, so it
// may be changed in place; everything taken from src is copied.
func merge(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				merge(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.New(src.Type().Elem()))
		}
		merge(dst.Elem(), src.Elem())
	case reflect.Map:
		if src.Len() == 0 {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		}
		for it := src.MapRange(); it.Next(); {
			dst.SetMapIndex(it.Key(), it.Value()) // map values are strings
		}
	case reflect.Slice:
		if src.Len() == 0 {
			return
		}
		if !keyed[src.Type()] {
			dst.Set(copySlice(src))
			return
		}
		out := copySlice(dst)
		for i := range src.Len() {
			elem := copyValue(src.Index(i))
			key, ok := keyOf(elem)
			replaced := false
			for j := 0; ok && j < out.Len(); j++ {
				if k, _ := keyOf(out.Index(j)); k == key {
					out.Index(j).Set(elem)
					replaced = true
					break
				}
			}
			if !replaced {
				out = reflect.Append(out, elem)
			}
		}
		dst.Set(out)
	case reflect.String:
		if src.String() != "" {
			dst.SetString(src.String())
		}
	default: // numbers and booleans, always behind a pointer: set means set
		dst.Set(src)
	}
}

// copyValue is a deep copy of v.
func copyValue(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	merge(out, v)
	return out
}

func copySlice(s reflect.Value) reflect.Value {
	if s.IsNil() {
		return reflect.Zero(s.Type())
	}
	out := reflect.MakeSlice(s.Type(), 0, s.Len())
	for i := range s.Len() {
		out = reflect.Append(out, copyValue(s.Index(i)))
	}
	return out
}
