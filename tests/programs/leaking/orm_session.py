"""An audit log written through a long-lived SQLAlchemy Session shared by every request: each
request adds an entry, and nothing commits, closes or expunges, so the session keeps every
pending entry."""

import itertools

import sqlalchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class AuditEntry(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


engine = sqlalchemy.create_engine("sqlite://")
Base.metadata.create_all(engine)
session = Session(engine)
events = itertools.count()


def request():
    session.add(AuditEntry(message=f"user logged in ({next(events)})"))
