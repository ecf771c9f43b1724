SELECT ':not' || $q$:x$q$ -- :c
, /* :d */ :a::int, E'\\':b', "col:x"