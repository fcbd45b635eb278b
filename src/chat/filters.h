// Filter implementations (internal): one function per jinja2 filter, looked up by name.
#pragma once
#include <string>

#include "chat/render.h"

namespace ember::chat {

using FilterFn = Value (*)(Renderer&, const Value&, CallArgs&);

// filters_seq.cpp: filters over sequences.
Value filter_map(Renderer& r, const Value& v, CallArgs& args);
Value filter_select(Renderer& r, const Value& v, CallArgs& args);
Value filter_reject(Renderer& r, const Value& v, CallArgs& args);
Value filter_selectattr(Renderer& r, const Value& v, CallArgs& args);
Value filter_rejectattr(Renderer& r, const Value& v, CallArgs& args);
Value filter_sort(Renderer& r, const Value& v, CallArgs& args);
Value filter_unique(Renderer& r, const Value& v, CallArgs& args);
Value filter_min(Renderer& r, const Value& v, CallArgs& args);
Value filter_max(Renderer& r, const Value& v, CallArgs& args);
Value filter_sum(Renderer& r, const Value& v, CallArgs& args);
Value filter_join(Renderer& r, const Value& v, CallArgs& args);
Value filter_dictsort(Renderer& r, const Value& v, CallArgs& args);

// Follows a dotted attribute path ("a.b", "0") the way jinja2's make_attrgetter does.
Value attribute_path(Renderer& r, const Value& item, const std::string& path);

}  // namespace ember::chat
