// json.cc — paths read out of a JSON document with simdjson On-Demand; see json.h.
//
// The only C++ translation unit of cdcrouter: simdjson's On-Demand API is
// C++ (header-only templates over the library), so this file keeps it
// behind the C interface of json.h. Built without exceptions and RTTI:
// simdjson reports errors as error codes, allocation failure aborts.
#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace od = simdjson::ondemand;

namespace {

constexpr int MAX_DEPTH = 1024;              // deeper documents are refused
constexpr size_t SHRINK_BYTES = 1u << 20;    // buffers above this are freed after a big document

struct node {
	std::string name;          // the field name leading here (empty for the root)
	int slot = -1;             // a path ends here
	std::vector<int> kids;     // indices into json_paths::nodes
	std::vector<int> below;    // every slot in this subtree, for last-key-wins resets
};

}  // namespace

struct json_paths {
	std::vector<node> nodes{ node{} };   // nodes[0]: the document itself
	int nslots = 0;
};

struct json_scanner {
	od::parser parser;
	std::vector<char> buf;               // the document, copied with SIMDJSON_PADDING
	std::string min;                     // compact JSON of captured objects and arrays
	std::vector<json_span> inexact;
};

extern "C" const char *json_kind_name(enum json_kind k)
{
	static const char *const names[] = { "missing", "null", "boolean", "boolean", "number", "string", "array",
		                             "object" };
	return names[k];
}

// ---- paths ---------------------------------------------------------------

extern "C" struct json_paths *json_paths_new(void) { return new json_paths; }

extern "C" void json_paths_free(struct json_paths **pp)
{
	delete *pp;
	*pp = nullptr;
}

extern "C" int json_paths_count(const struct json_paths *ps) { return ps ? ps->nslots : 0; }

extern "C" int json_paths_add(struct json_paths *ps, const char *const *fields, int nfields)
{
	std::vector<int> trail{ 0 };
	int cur = 0;

	for (int i = 0; i < nfields; i++) {
		int next = -1;

		for (int k : ps->nodes[(size_t)cur].kids)
			if (ps->nodes[(size_t)k].name == fields[i])
				next = k;
		if (next < 0) {
			next = (int)ps->nodes.size();
			ps->nodes.push_back(node{});
			ps->nodes.back().name = fields[i];
			ps->nodes[(size_t)cur].kids.push_back(next);
		}
		cur = next;
		trail.push_back(cur);
	}
	node &n = ps->nodes[(size_t)cur];
	if (n.slot < 0) {
		n.slot = ps->nslots++;
		for (int t : trail)
			ps->nodes[(size_t)t].below.push_back(n.slot);
	}
	return n.slot;
}

// ---- numbers -------------------------------------------------------------

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
static bool number_valid(const char *p, size_t n)
{
	const char *e = p + n;
	auto digits = [&](void) {
		const char *s = p;

		while (p < e && *p >= '0' && *p <= '9')
			p++;
		return p > s;
	};

	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (!digits())
		return false;
	if (p < e && *p == '.') {
		p++;
		if (!digits())
			return false;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (!digits())
			return false;
	}
	return p == e;
}

extern "C" int json_number_exact(const char *p, size_t n)
{
	const char *e = p + n;
	std::string digs;                 // significant digits, leading zeros dropped
	long point = 0;                   // how many of digs come before the decimal point
	bool seen_point = false;
	char lit[64];
	double d;

	if (n >= sizeof(lit))
		return 0;                                  // at least 63 characters: more than 17 digits
	memcpy(lit, p, n);
	lit[n] = '\0';
	d = strtod(lit, nullptr);
	if (p < e && *p == '-')
		p++;
	for (; p < e && ((*p >= '0' && *p <= '9') || *p == '.'); p++) {
		if (*p == '.') {
			seen_point = true;
		} else if (digs.empty() && *p == '0') {
			if (seen_point)
				point--;
		} else {
			digs.push_back(*p);
			if (!seen_point)
				point++;
		}
	}
	if (p < e) {                                   // e or E; beyond ±100000 d is 0 or inf anyway
		long x = strtol(p + 1, nullptr, 10);

		point += x > 100000 ? 100000 : x < -100000 ? -100000 : x;
	}
	while (!digs.empty() && digs.back() == '0')
		digs.pop_back();
	if (digs.empty())
		return 1;                                  // zero, of any sign and form
	if (!std::isfinite(d) || std::fabs(d) < 2.2250738585072014e-308)
		return 0;                                  // overflows, or underflows (denormal or zero)
	if (digs.size() <= 15)
		return 1;                                  // DBL_DIG: survives decimal → double → decimal
	if ((long)digs.size() > point || point != 16)  // a fraction, or an integer of 17 digits or more
		return 0;
	return digs + std::string((size_t)(point - (long)digs.size()), '0') <= "9007199254740992";  // ≤ 2^53
}

// ---- the walk ------------------------------------------------------------

namespace {

struct capture {                    // an object or array to be written as compact JSON
	int slot;
	const char *start, *end;
};

struct walker {
	json_scanner *s;
	const json_paths *ps;
	json_val *out;
	od::document *doc;
	const char *base, *end;         // the copied document
	int flags;
	std::vector<capture> caps;
	simdjson::error_code err = simdjson::SUCCESS;
	const char *why = nullptr;      // our own reason, when err is not simdjson's
	const char *at = nullptr;       // where it went wrong, if known

	bool fail(simdjson::error_code e, const char *reason = nullptr, const char *where = nullptr)
	{
		if (err == simdjson::SUCCESS && !why) {
			err = e;
			why = reason;
			at = where;
		}
		return false;
	}

	void clear_below(int n)
	{
		const std::vector<int> &below = ps->nodes[(size_t)n].below;

		for (int slot : below)
			out[slot] = json_val{ JSON_MISSING, nullptr, 0 };
		for (size_t i = caps.size(); i-- > 0;)
			for (int slot : below)
				if (caps[i].slot == slot) {
					caps.erase(caps.begin() + (long)i);
					break;
				}
	}

	int child(int n, std::string_view key) const
	{
		if (n < 0)
			return -1;
		for (int k : ps->nodes[(size_t)n].kids)
			if (ps->nodes[(size_t)k].name == key)
				return k;
		return -1;
	}

	// Where the value just walked ends: the next token, or the document's end.
	const char *here()
	{
		const char *p;

		if (doc->current_location().get(p))
			p = end;
		return p;
	}

	static std::string_view trim(std::string_view t)
	{
		while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r'))
			t.remove_suffix(1);
		return t;
	}

	void set(int slot, json_kind k, std::string_view t)
	{
		if (slot >= 0)
			out[slot] = json_val{ k, k == JSON_NULL ? nullptr : t.data(), k == JSON_NULL ? 0 : t.size() };
	}

	bool number(std::string_view tok, int slot)
	{
		tok = trim(tok);
		if (!number_valid(tok.data(), tok.size()))
			return fail(simdjson::NUMBER_ERROR, "invalid number", tok.data());
		if ((flags & JSON_SCAN_INEXACT) && !json_number_exact(tok.data(), tok.size()))
			s->inexact.push_back(json_span{ (size_t)(tok.data() - base), tok.size() });
		set(slot, JSON_NUMBER, tok);
		return true;
	}

	bool object(od::object o, int n, int depth);
	bool array(od::array a, int depth);
	bool value(od::value v, int n, int depth);
};

bool walker::object(od::object o, int n, int depth)
{
	for (auto fr : o) {
		od::field f;
		std::string_view key;
		simdjson::error_code e = std::move(fr).get(f);

		if (e || (e = f.unescaped_key().get(key)))
			return fail(e, nullptr, here());
		int c = child(n, key);
		if (c >= 0)
			clear_below(c);       // a repeated key: its last occurrence counts
		if (!value(f.value(), c, depth + 1))
			return false;
	}
	return true;
}

bool walker::array(od::array a, int depth)
{
	for (auto er : a) {
		od::value v;
		simdjson::error_code e = std::move(er).get(v);

		if (e)
			return fail(e, nullptr, here());
		if (!value(v, -1, depth + 1))
			return false;
	}
	return true;
}

bool walker::value(od::value v, int n, int depth)
{
	od::json_type t;
	int slot = n >= 0 ? ps->nodes[(size_t)n].slot : -1;
	bool kids = n >= 0 && !ps->nodes[(size_t)n].kids.empty();

	if (depth > MAX_DEPTH)
		return fail(simdjson::DEPTH_ERROR, nullptr, v.raw_json_token().data());
	if (v.type().get(t))
		return fail(simdjson::TAPE_ERROR, "unexpected character", v.raw_json_token().data());
	switch (t) {
	case od::json_type::object: {
		const char *start = v.raw_json_token().data();
		od::object o;

		if (v.get_object().get(o) || !object(o, kids ? n : -1, depth))
			return fail(simdjson::TAPE_ERROR, nullptr, here());
		if (slot >= 0)
			caps.push_back(capture{ slot, start, here() });
		return true;
	}
	case od::json_type::array: {
		const char *start = v.raw_json_token().data();
		od::array a;

		if (v.get_array().get(a) || !array(a, depth))
			return fail(simdjson::TAPE_ERROR, nullptr, here());
		if (slot >= 0)
			caps.push_back(capture{ slot, start, here() });
		return true;
	}
	case od::json_type::string: {
		std::string_view sv;
		const char *where = v.raw_json_token().data();

		if (v.get_string().get(sv))
			return fail(simdjson::STRING_ERROR, nullptr, where);
		set(slot, JSON_STRING, sv);
		return true;
	}
	case od::json_type::number:
		return number(v.raw_json_token(), slot);
	case od::json_type::boolean: {
		bool b;
		const char *where = v.raw_json_token().data();

		if (v.get_bool().get(b))
			return fail(simdjson::T_ATOM_ERROR, "invalid literal", where);
		set(slot, b ? JSON_TRUE : JSON_FALSE, b ? "true" : "false");
		return true;
	}
	case od::json_type::null: {
		bool isnull = false;
		const char *where = v.raw_json_token().data();

		if (v.is_null().get(isnull) || !isnull)
			return fail(simdjson::N_ATOM_ERROR, "invalid literal", where);
		set(slot, JSON_NULL, {});
		return true;
	}
	}
	return fail(simdjson::TAPE_ERROR, "unexpected character", v.raw_json_token().data());
}

}  // namespace

extern "C" struct json_scanner *json_scanner_new(void) { return new json_scanner; }

extern "C" void json_scanner_free(struct json_scanner **sp)
{
	delete *sp;
	*sp = nullptr;
}

extern "C" size_t json_inexact(const struct json_scanner *s, const struct json_span **spans)
{
	*spans = s->inexact.data();
	return s->inexact.size();
}

// The root: a document may be an object, an array or a scalar.
static bool walk_root(walker &w, od::document &doc, enum json_kind *root)
{
	od::json_type t;
	const json_paths *ps = w.ps;
	int slot = ps ? ps->nodes[0].slot : -1;
	bool kids = ps && !ps->nodes[0].kids.empty();
	const char *start = w.base, *next;
	std::string_view tok;

	while (start < w.end && (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r'))
		start++;
	if (doc.type().get(t))
		return w.fail(simdjson::TAPE_ERROR, start < w.end ? "unexpected character" : "empty document", start);
	if (t != od::json_type::object && t != od::json_type::array) {
		// a scalar: its token (with the spaces after it) must end the document
		if (doc.raw_json_token().get(tok))
			return w.fail(simdjson::TAPE_ERROR, nullptr, start);
		if (tok.data() + tok.size() != w.end)
			return w.fail(simdjson::TRAILING_CONTENT, "trailing bytes after the document",
			              tok.data() + tok.size());
	}
	switch (t) {
	case od::json_type::object: {
		od::object o;

		*root = JSON_OBJECT;
		if (doc.get_object().get(o) || !w.object(o, kids ? 0 : -1, 1))
			return w.fail(simdjson::TAPE_ERROR, nullptr, w.here());
		break;
	}
	case od::json_type::array: {
		od::array a;

		*root = JSON_ARRAY;
		if (doc.get_array().get(a) || !w.array(a, 1))
			return w.fail(simdjson::TAPE_ERROR, nullptr, w.here());
		break;
	}
	case od::json_type::string: {
		std::string_view sv;

		*root = JSON_STRING;
		if (doc.get_string().get(sv))
			return w.fail(simdjson::STRING_ERROR, nullptr, start);
		w.set(slot, JSON_STRING, sv);
		return true;
	}
	case od::json_type::number:
		*root = JSON_NUMBER;
		return w.number(tok, slot);
	case od::json_type::boolean: {
		bool b;

		if (doc.get_bool().get(b))
			return w.fail(simdjson::T_ATOM_ERROR, "invalid literal", start);
		*root = b ? JSON_TRUE : JSON_FALSE;
		w.set(slot, *root, b ? "true" : "false");
		return true;
	}
	case od::json_type::null: {
		bool isnull = false;

		if (doc.is_null().get(isnull) || !isnull)
			return w.fail(simdjson::N_ATOM_ERROR, "invalid literal", start);
		*root = JSON_NULL;
		w.set(slot, JSON_NULL, {});
		return true;
	}
	}
	// an object or an array: nothing may follow it
	if (!doc.current_location().get(next))
		return w.fail(simdjson::TRAILING_CONTENT, "trailing bytes after the document", next);
	if (slot >= 0) {
		const char *e = w.end;

		while (e > start && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
			e--;
		w.caps.push_back(capture{ slot, start, e });
	}
	return true;
}

extern "C" int json_scan(struct json_scanner *s, const struct json_paths *ps, const char *doc, size_t len,
                         int flags, struct json_val *out, enum json_kind *root, char *err, size_t errlen)
{
	od::document d;
	walker w{ s, ps, out, &d, nullptr, nullptr, flags, {} };
	size_t total = 0;

	if (len < SHRINK_BYTES && s->buf.capacity() > SHRINK_BYTES) {   // after a big document
		s->parser = od::parser{};
		std::vector<char>().swap(s->buf);
		std::string().swap(s->min);
	}
	s->inexact.clear();
	*root = JSON_MISSING;
	for (int i = 0; i < json_paths_count(ps); i++)
		out[i] = json_val{ JSON_MISSING, nullptr, 0 };
	s->buf.resize(len + simdjson::SIMDJSON_PADDING);
	if (len)
		memcpy(s->buf.data(), doc, len);
	memset(s->buf.data() + len, 0, simdjson::SIMDJSON_PADDING);
	w.base = s->buf.data();
	w.end = w.base + len;
	auto e = s->parser.iterate(s->buf.data(), len, s->buf.size()).get(d);
	if (e)
		w.fail(e);
	else
		walk_root(w, d, root);
	if (w.err != simdjson::SUCCESS || w.why) {
		const char *what = w.why ? w.why : simdjson::error_message(w.err);

		if (w.at && w.at > w.base && w.at <= w.end)   // not at 0: simdjson checks the closing brace first
			snprintf(err, errlen, "%s (at byte %zu)", what, (size_t)(w.at - w.base));
		else
			snprintf(err, errlen, "%s", what);
		return -1;
	}
	// compact JSON for the captured objects and arrays, in one buffer
	for (const capture &c : w.caps)
		total += (size_t)(c.end - c.start);
	s->min.resize(total + 1);
	total = 0;
	for (const capture &c : w.caps) {
		size_t n = 0;

		if (simdjson::minify(c.start, (size_t)(c.end - c.start), &s->min[total], n)) {
			snprintf(err, errlen, "cannot minify a JSON value");
			return -1;
		}
		out[c.slot] = json_val{ *c.start == '{' ? JSON_OBJECT : JSON_ARRAY, &s->min[total], n };
		total += n;
	}
	return 0;
}
