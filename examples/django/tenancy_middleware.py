"""Django on tenancy: the request's tenant, set first in the request's transaction.

Django runs middleware outside the view's transaction (ATOMIC_REQUESTS wraps
the view only), so this middleware opens the transaction itself, sets the
tenant for it (is_local => true: nothing carries over to the next request on
the connection) and maps tenancy's SQLSTATEs to HTTP statuses.
"""
from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse

STATUS = {"P0002": 404, "55000": 403, "42704": 410, "0P000": 400, "28000": 401, "42501": 403}


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT tenancy.set_tenant(%s, is_local => true)",
                                   [request.headers.get("X-Tenant")])
                return self.get_response(request)  # committed before the response leaves
        except DatabaseError as error:
            sqlstate = getattr(error.__cause__, "sqlstate", None)
            return JsonResponse({"sqlstate": sqlstate}, status=STATUS.get(sqlstate, 500))
