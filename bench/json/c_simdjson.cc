// c_simdjson.cc — simdjson 3.0.1 On-Demand behind a C function.
//
// Iterates the top-level object's fields once.  A wanted value is taken as
// text: a string unescaped, a number as its literal token, true/false/null,
// an object or array as the JSON text it spans.  Every value, wanted or
// not, is walked to the end (a scalar through its getter), so the whole
// document is validated; On-Demand itself only checks what is read.
//
// Built twice (see run): CAND is cand_simdjson for plain x86-64 and
// cand_simdjson_haswell with -march=haswell.  Stage 1 (structural indexing,
// UTF-8 check) and string unescaping are in libsimdjson, dispatched at run
// time; the On-Demand code here is compiled for simdjson's "builtin"
// kernel, which is "fallback" without -march flags.
#include "cand.h"

#include <simdjson.h>

#include <cstring>
#include <memory>

using namespace simdjson;

namespace {

ondemand::parser parser;            // reused: keeps its buffers between messages
std::unique_ptr<char[]> padded;     // the message, copied, with SIMDJSON_PADDING after it
size_t padded_cap;

std::string_view trim(std::string_view t)
{
	while (!t.empty() && strchr(" \t\r\n", t.back()))
		t.remove_suffix(1);
	return t;
}

// On-Demand does not enforce the parser's max_depth: without a limit of
// our own, a deeply nested message would overflow the stack in walk().
// 1024 as simdjson's default, the top-level object counting as 1.
constexpr int max_depth = 1024;

// Walk a value to its end, checking it: containers recursively, each
// scalar through the getter for its type.
error_code walk(ondemand::value v, int depth = 2)   // 2: a value in the top-level object
{
	ondemand::json_type t;
	std::string_view s;
	double d;
	bool b;

	if (auto e = v.type().get(t))
		return e;
	if (depth > max_depth && (t == ondemand::json_type::object || t == ondemand::json_type::array))
		return DEPTH_ERROR;
	switch (t) {
	case ondemand::json_type::object: {
		ondemand::object o;
		if (auto e = v.get_object().get(o))
			return e;
		for (auto f : o) {
			if (auto e = f.error())
				return e;
			ondemand::field &fl = f.value_unsafe();
			if (auto e = fl.unescaped_key().get(s))
				return e;
			if (auto e = walk(fl.value(), depth + 1))
				return e;
		}
		return SUCCESS;
	}
	case ondemand::json_type::array: {
		ondemand::array a;
		if (auto e = v.get_array().get(a))
			return e;
		for (auto x : a) {
			ondemand::value xv;
			if (auto e = x.get(xv))
				return e;
			if (auto e = walk(xv, depth + 1))
				return e;
		}
		return SUCCESS;
	}
	case ondemand::json_type::string:
		return v.get_string().get(s);
	case ondemand::json_type::number:
		// get_double, not get_number: get_number fails on integers beyond
		// 64 bits (NUMBER_ERROR in 3.0.1); get_double takes any digits
		// (and rejects 01, 1., 2e, and out of double range: 1e400)
		return v.get_double().get(d);
	case ondemand::json_type::boolean:
		return v.get_bool().get(b);
	case ondemand::json_type::null:
		if (auto e = v.is_null().get(b))
			return e;
		return b ? SUCCESS : INCORRECT_TYPE;
	}
	return INCORRECT_TYPE;
}

error_code take(ondemand::document &doc, ondemand::value v, struct out *o, int i)
{
	ondemand::json_type t;
	std::string_view s;

	if (auto e = v.type().get(t))
		return e;
	switch (t) {
	case ondemand::json_type::string:
		if (auto e = v.get_string().get(s))
			return e;
		out_put(o, i, K_STRING, s.data(), s.size());
		return SUCCESS;
	case ondemand::json_type::number:
		// the literal token, which runs up to the next token: trim it
		s = trim(v.raw_json_token());
		if (auto e = walk(v))
			return e;
		out_put(o, i, K_NUMBER, s.data(), s.size());
		return SUCCESS;
	case ondemand::json_type::object:
	case ondemand::json_type::array: {
		// raw_json() would skip without validating: walk it, then take the
		// text from its first byte to the next token (, or } in the parent)
		const char *start = v.raw_json_token().data(), *end;
		if (auto e = walk(v))
			return e;
		if (auto e = doc.current_location().get(end))
			return e;
		s = trim(std::string_view(start, size_t(end - start)));
		out_put(o, i, K_JSON, s.data(), s.size());
		return SUCCESS;
	}
	case ondemand::json_type::boolean: {
		bool b;
		if (auto e = v.get_bool().get(b))
			return e;
		out_put(o, i, b ? K_TRUE : K_FALSE, b ? "true" : "false", b ? 4 : 5);
		return SUCCESS;
	}
	case ondemand::json_type::null:
		if (auto e = walk(v))
			return e;
		out_put(o, i, K_NULL, "null", 4);
		return SUCCESS;
	}
	return INCORRECT_TYPE;
}

error_code parse(const char *json, size_t len, struct out *o)
{
	ondemand::document doc;
	ondemand::object obj;
	const char *rest;

	if (len + SIMDJSON_PADDING > padded_cap) {
		padded_cap = 2 * len + SIMDJSON_PADDING;
		padded.reset(new char[padded_cap]);
	}
	memcpy(padded.get(), json, len);
	memset(padded.get() + len, 0, SIMDJSON_PADDING);
	if (auto e = parser.iterate(padded_string_view(padded.get(), len, padded_cap)).get(doc))
		return e;
	if (auto e = doc.get_object().get(obj))
		return e;
	for (auto f : obj) {
		std::string_view k;
		int i;

		if (auto e = f.error())
			return e;
		ondemand::field &fl = f.value_unsafe();
		if (auto e = fl.unescaped_key().get(k))
			return e;
		i = out_want(o, k.data(), k.size());
		if (auto e = i >= 0 ? take(doc, fl.value(), o, i) : walk(fl.value()))
			return e;
	}
	// 3.0.1 has no document::at_end(); get_object() only checks that the
	// last token is '}', so {"a":1}} and {"a":1}{"b":2} get here.  At the
	// end, current_location() is OUT_OF_BOUNDS; otherwise it points at the
	// trailing content.
	if (doc.current_location().get(rest) != OUT_OF_BOUNDS)
		return TRAILING_CONTENT;
	return SUCCESS;
}

} // namespace

extern "C" int CAND(const char *json, size_t len, struct out *o)
{
	return parse(json, len, o) == SUCCESS ? 0 : -1;
}

extern "C" const char *BUILTIN(void)
{
	// not builtin_implementation(): that is libsimdjson's own builtin
	return SIMDJSON_STRINGIFY(SIMDJSON_BUILTIN_IMPLEMENTATION);
}

#ifndef __AVX2__
extern "C" const char *simdjson_impl(void)
{
	return get_active_implementation()->name().c_str();
}
#endif
