// Scopes: a <connection> or <listen> block takes each option from itself, else from the
// top level, else the default; contradictions inside a scope are errors here.
#include "loader_state.hpp"

namespace duet::config::detail {

FamilyChoice Loader::family(const Raw& r, const Raw* base) {
  auto ipv4 = r.ipv4 ? r.ipv4 : (base ? base->ipv4 : std::nullopt);
  auto ipv6 = r.ipv6 ? r.ipv6 : (base ? base->ipv6 : std::nullopt);
  if (ipv4 && ipv6) {
    diag.error(ipv6->where, "'ipv6' contradicts 'ipv4' at " + ipv4->where.to_string() +
                                ": give one of them to force a family, or neither for both");
    return FamilyChoice::both;
  }
  if (ipv4) return FamilyChoice::v4;
  if (ipv6) return FamilyChoice::v6;
  return FamilyChoice::both;
}

template <typename T>
const Opt<T>& pick(const Opt<T>& inner, const Opt<T>& outer) {
  return inner ? inner : outer;
}

Connection Loader::make_connection(const Raw& top, const Raw* block) {
  const Raw empty;
  const Raw& b = block ? *block : empty;
  Connection c;
  c.where = block ? block->where : SourceLocation{};
  if (auto& p = pick(b.proto, top.proto)) c.proto = p->value;
  c.family = family(b, &top);
  for (const auto& l : (b.locals.empty() ? top.locals : b.locals)) c.locals.push_back(l.value);
  if (auto& p = pick(b.lport, top.lport)) {
    c.lport = p->value;
    c.lport_set = true;
  } else if (auto& q = pick(b.port, top.port)) {
    c.lport = q->value;
    c.lport_set = true;
  }
  const auto& bind = pick(b.bind, top.bind);
  const auto& nobind = pick(b.nobind, top.nobind);
  if (bind && nobind) {
    diag.error(bind->where.line >= nobind->where.line ? bind->where : nobind->where,
               "'bind' and 'nobind' contradict each other (the other is at " +
                   (bind->where.line >= nobind->where.line ? nobind->where : bind->where).to_string() + ")");
  } else if (bind) {
    c.bind = BindChoice::bind;
  } else if (nobind) {
    c.bind = BindChoice::nobind;
  }
  if (auto& t = pick(b.connect_timeout, top.connect_timeout)) c.connect_timeout = t->value;
  if (auto& t = pick(b.server_poll_timeout, top.server_poll_timeout)) c.server_poll_timeout = t->value;
  if (auto& r = pick(b.connect_retry, top.connect_retry)) {
    c.connect_retry = r->value.first;
    c.connect_retry_max = r->value.second;
  }
  if (auto& k = pick(b.keepalive, top.keepalive)) {
    c.keepalive_interval = k->value.first;
    c.keepalive_timeout = k->value.second;
  }
  if (auto& h = pick(b.happy_eyeballs_delay, top.happy_eyeballs_delay)) {
    c.happy_eyeballs_delay = h->value;
    c.happy_eyeballs_delay_where = h->where;
  }
  const auto& rport = pick(b.rport, top.rport);
  const auto& port = pick(b.port, top.port);
  const Raw& rr = block ? b : top;
  for (std::size_t i = 0; i < rr.remotes.size(); ++i) {
    Remote r = rr.remotes[i];
    if (!rr.remote_port_given[i]) r.port = rport ? rport->value : port ? port->value : kDefaultPort;
    r.proto = rr.remote_protos[i].value_or(c.proto);
    c.remotes.push_back(r);
  }
  return c;
}

Listen Loader::make_listen(const Raw& top, const Raw* block) {
  const Raw empty;
  const Raw& b = block ? *block : empty;
  Listen l;
  l.where = block ? block->where : (top.proto ? top.proto->where : SourceLocation{});
  if (auto& p = pick(b.proto, top.proto)) l.proto = p->value;
  l.family = family(b, &top);
  for (const auto& x : (b.locals.empty() ? top.locals : b.locals)) l.locals.push_back(x.value);
  if (auto& p = pick(b.lport, top.lport))
    l.port = p->value;
  else if (auto& q = pick(b.port, top.port))
    l.port = q->value;
  return l;
}

}  // namespace duet::config::detail
